function I = rgb2gray(X)
  % Shim: MATLAB's rgb2gray as documented (weights = first row of the inverse NTSC matrix,
  % uint8 results rounded), replacing Octave 7's, which rounds the weights to six decimals.
  w = inv([1.0 0.956 0.621; 1.0 -0.272 -0.647; 1.0 -1.106 1.703])(1, :);
  if size(X, 3) ~= 3, error('rgb2gray shim: need an RGB image'); end
  Y = w(1) * double(X(:,:,1)) + w(2) * double(X(:,:,2)) + w(3) * double(X(:,:,3));
  if isa(X, 'uint8'), I = uint8(Y); else, I = Y; end
end
